-- Sales value and units per month and currency, this year and last (latest version of each order)
-- Sales value per month and currency. Partition filter on created_year prunes old months.
WITH latest AS (
  SELECT f.*,
         row_number() OVER (
           PARTITION BY f.sales_order_id
           ORDER BY f.last_updated_date DESC, f.last_updated_time DESC
         ) AS version_rank
  FROM fact_sales_order f
  WHERE f.created_year >= year(current_date) - 1
)
SELECT l.created_year,
       l.created_month,
       c.currency_code,
       sum(l.units_sold * l.unit_price) AS sales_value,
       sum(l.units_sold)                AS units_sold,
       count(*)                         AS orders
FROM latest l
JOIN dim_currency c ON c.currency_id = l.currency_id
WHERE l.version_rank = 1
GROUP BY l.created_year, l.created_month, c.currency_code
ORDER BY l.created_year, l.created_month, c.currency_code;
