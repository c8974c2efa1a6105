-- Recipients and average benefit per district (aggregate mode).
SELECT district, COUNT(*) AS recipients, ROUND(AVG(benefit_amount), 2) AS avg_benefit
FROM residents
GROUP BY district
ORDER BY district;
