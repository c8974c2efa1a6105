-- dp mode: noisy counts and average benefit per district (spends ε).
SELECT district, COUNT(*) AS recipients, AVG(benefit_amount) AS avg_benefit
FROM residents
GROUP BY district;
