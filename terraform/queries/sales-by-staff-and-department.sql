-- Sales value per salesperson and department this year, by currency
WITH latest AS (
  SELECT f.*,
         row_number() OVER (
           PARTITION BY f.sales_order_id
           ORDER BY f.last_updated_date DESC, f.last_updated_time DESC
         ) AS version_rank
  FROM fact_sales_order f
  WHERE f.created_year = year(current_date)
)
SELECT s.department_name,
       s.staff_id,
       s.first_name,
       s.last_name,
       c.currency_code,
       sum(l.units_sold * l.unit_price) AS sales_value,
       count(*)                         AS orders
FROM latest l
JOIN dim_staff s    ON s.staff_id = l.sales_staff_id
JOIN dim_currency c ON c.currency_id = l.currency_id
WHERE l.version_rank = 1
GROUP BY s.department_name, s.staff_id, s.first_name, s.last_name, c.currency_code
ORDER BY s.department_name, sales_value DESC;
