-- The 20 designs with most units sold in the last 12 months
WITH latest AS (
  SELECT f.*,
         row_number() OVER (
           PARTITION BY f.sales_order_id
           ORDER BY f.last_updated_date DESC, f.last_updated_time DESC
         ) AS version_rank
  FROM fact_sales_order f
  -- prune to the partitions that can hold the last 12 months, then filter exactly
  WHERE f.created_year >= year(current_date) - 1
)
SELECT d.design_id,
       d.design_name,
       sum(l.units_sold) AS units_sold,
       count(*)          AS orders
FROM latest l
JOIN dim_design d ON d.design_id = l.design_id
WHERE l.version_rank = 1
  AND l.created_date >= date_add('month', -12, current_date)
GROUP BY d.design_id, d.design_name
ORDER BY units_sold DESC
LIMIT 20;
