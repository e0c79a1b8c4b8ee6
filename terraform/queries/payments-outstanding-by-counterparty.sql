-- Unpaid payments per counterparty and currency (latest version of each payment)
-- No partition filter on purpose: a payment created years ago can still be unpaid, and an
-- outstanding balance that silently drops old debts would be wrong. fact_payment is small.
WITH latest AS (
  SELECT f.*,
         row_number() OVER (
           PARTITION BY f.payment_id
           ORDER BY f.last_updated_date DESC, f.last_updated_time DESC
         ) AS version_rank
  FROM fact_payment f
)
SELECT cp.counterparty_id,
       cp.counterparty_legal_name,
       c.currency_code,
       sum(l.payment_amount) AS amount_outstanding,
       count(*)              AS payments,
       min(l.payment_date)   AS oldest_payment_date
FROM latest l
JOIN dim_counterparty cp ON cp.counterparty_id = l.counterparty_id
JOIN dim_currency c      ON c.currency_id = l.currency_id
WHERE l.version_rank = 1
  AND NOT l.paid
GROUP BY cp.counterparty_id, cp.counterparty_legal_name, c.currency_code
ORDER BY amount_outstanding DESC;
