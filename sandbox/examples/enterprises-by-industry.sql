-- An open registry without a privacy unit: rows may be read, L3 fields may not.
SELECT industry, district, COUNT(*) AS companies, ROUND(AVG(registered_capital), 1) AS avg_capital
FROM enterprises
GROUP BY industry, district
ORDER BY companies DESC
LIMIT 20;
