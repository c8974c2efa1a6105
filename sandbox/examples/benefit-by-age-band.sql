-- Average benefit by five-year birth band and service type, older recipients only.
SELECT CAST(strftime('%Y', birth_date) AS INTEGER) / 5 * 5 AS birth_band, service_type,
       COUNT(DISTINCT id_number) AS people, ROUND(AVG(benefit_amount), 2) AS avg_benefit
FROM residents
WHERE birth_date < '1960-01-01'
GROUP BY birth_band, service_type
ORDER BY birth_band, service_type;
