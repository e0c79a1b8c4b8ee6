-- Purchase spend per supplier and currency this year and last (latest version of each purchase order)
WITH latest AS (
  SELECT f.*,
         row_number() OVER (
           PARTITION BY f.purchase_order_id
           ORDER BY f.last_updated_date DESC, f.last_updated_time DESC
         ) AS version_rank
  FROM fact_purchase_order f
  WHERE f.created_year >= year(current_date) - 1
)
SELECT l.created_year,
       cp.counterparty_legal_name,
       c.currency_code,
       sum(l.item_quantity * l.item_unit_price) AS spend,
       count(*)                                 AS purchase_orders
FROM latest l
JOIN dim_counterparty cp ON cp.counterparty_id = l.counterparty_id
JOIN dim_currency c      ON c.currency_id = l.currency_id
WHERE l.version_rank = 1
GROUP BY l.created_year, cp.counterparty_legal_name, c.currency_code
ORDER BY l.created_year DESC, spend DESC;
