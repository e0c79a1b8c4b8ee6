"""Migration 0001: the warehouse as it was before versioned migrations (SPEC.md section 3).

Exactly what `ensure_schema` created up to commit fd1d3ef: the staging schema, the eleven tables
with their keys, NOT NULL constraints and foreign keys, and one unique index per fact on its
version key. A warehouse made by that code has no `schema_migrations` table and is adopted
(shared/jdbc/warehouse.py): this migration is recorded as applied there, not run again.

Frozen: never edit an applied migration (its checksum is in every migrated warehouse); change the
schema with a new numbered module instead (docs/schema-changes.md).
"""

SQL = """
CREATE SCHEMA IF NOT EXISTS "etl_staging";
CREATE TABLE "dim_date" (
  "date_id" date NOT NULL,
  "year" integer NOT NULL,
  "month" integer NOT NULL,
  "day" integer NOT NULL,
  "day_of_week" integer NOT NULL,
  "day_name" varchar NOT NULL,
  "month_name" varchar NOT NULL,
  "quarter" integer NOT NULL,
  PRIMARY KEY ("date_id")
);
CREATE TABLE "dim_staff" (
  "staff_id" integer NOT NULL,
  "first_name" varchar NOT NULL,
  "last_name" varchar NOT NULL,
  "department_name" varchar NOT NULL,
  "location" varchar,
  "email_address" varchar NOT NULL,
  PRIMARY KEY ("staff_id")
);
CREATE TABLE "dim_location" (
  "location_id" integer NOT NULL,
  "address_line_1" varchar NOT NULL,
  "address_line_2" varchar,
  "district" varchar,
  "city" varchar NOT NULL,
  "postal_code" varchar NOT NULL,
  "country" varchar NOT NULL,
  "phone" varchar NOT NULL,
  PRIMARY KEY ("location_id")
);
CREATE TABLE "dim_currency" (
  "currency_id" integer NOT NULL,
  "currency_code" varchar NOT NULL,
  "currency_name" varchar NOT NULL,
  PRIMARY KEY ("currency_id")
);
CREATE TABLE "dim_design" (
  "design_id" integer NOT NULL,
  "design_name" varchar NOT NULL,
  "file_location" varchar NOT NULL,
  "file_name" varchar NOT NULL,
  PRIMARY KEY ("design_id")
);
CREATE TABLE "dim_counterparty" (
  "counterparty_id" integer NOT NULL,
  "counterparty_legal_name" varchar NOT NULL,
  "counterparty_legal_address_line_1" varchar NOT NULL,
  "counterparty_legal_address_line_2" varchar,
  "counterparty_legal_district" varchar,
  "counterparty_legal_city" varchar NOT NULL,
  "counterparty_legal_postal_code" varchar NOT NULL,
  "counterparty_legal_country" varchar NOT NULL,
  "counterparty_legal_phone_number" varchar NOT NULL,
  PRIMARY KEY ("counterparty_id")
);
CREATE TABLE "dim_payment_type" (
  "payment_type_id" integer NOT NULL,
  "payment_type_name" varchar NOT NULL,
  PRIMARY KEY ("payment_type_id")
);
CREATE TABLE "dim_transaction" (
  "transaction_id" integer NOT NULL,
  "transaction_type" varchar NOT NULL,
  "sales_order_id" integer,
  "purchase_order_id" integer,
  PRIMARY KEY ("transaction_id")
);
CREATE TABLE "fact_sales_order" (
  "sales_record_id" serial PRIMARY KEY,
  "sales_order_id" integer NOT NULL,
  "created_date" date NOT NULL,
  "created_time" time(3) without time zone NOT NULL,
  "last_updated_date" date NOT NULL,
  "last_updated_time" time(3) without time zone NOT NULL,
  "sales_staff_id" integer NOT NULL,
  "counterparty_id" integer NOT NULL,
  "units_sold" integer NOT NULL,
  "unit_price" numeric(10,2) NOT NULL,
  "currency_id" integer NOT NULL,
  "design_id" integer NOT NULL,
  "agreed_payment_date" date NOT NULL,
  "agreed_delivery_date" date NOT NULL,
  "agreed_delivery_location_id" integer NOT NULL,
  CONSTRAINT "fact_sales_order_created_date_fkey" FOREIGN KEY ("created_date") REFERENCES "dim_date" ("date_id"),
  CONSTRAINT "fact_sales_order_last_updated_date_fkey" FOREIGN KEY ("last_updated_date") REFERENCES "dim_date" ("date_id"),
  CONSTRAINT "fact_sales_order_sales_staff_id_fkey" FOREIGN KEY ("sales_staff_id") REFERENCES "dim_staff" ("staff_id"),
  CONSTRAINT "fact_sales_order_counterparty_id_fkey" FOREIGN KEY ("counterparty_id") REFERENCES "dim_counterparty" ("counterparty_id"),
  CONSTRAINT "fact_sales_order_currency_id_fkey" FOREIGN KEY ("currency_id") REFERENCES "dim_currency" ("currency_id"),
  CONSTRAINT "fact_sales_order_design_id_fkey" FOREIGN KEY ("design_id") REFERENCES "dim_design" ("design_id"),
  CONSTRAINT "fact_sales_order_agreed_payment_date_fkey" FOREIGN KEY ("agreed_payment_date") REFERENCES "dim_date" ("date_id"),
  CONSTRAINT "fact_sales_order_agreed_delivery_date_fkey" FOREIGN KEY ("agreed_delivery_date") REFERENCES "dim_date" ("date_id"),
  CONSTRAINT "fact_sales_order_agreed_delivery_location_id_fkey" FOREIGN KEY ("agreed_delivery_location_id") REFERENCES "dim_location" ("location_id")
);
CREATE UNIQUE INDEX "fact_sales_order_version_key" ON "fact_sales_order" ("sales_order_id", "last_updated_date", "last_updated_time");
CREATE TABLE "fact_purchase_order" (
  "purchase_record_id" serial PRIMARY KEY,
  "purchase_order_id" integer NOT NULL,
  "created_date" date NOT NULL,
  "created_time" time(3) without time zone NOT NULL,
  "last_updated_date" date NOT NULL,
  "last_updated_time" time(3) without time zone NOT NULL,
  "staff_id" integer NOT NULL,
  "counterparty_id" integer NOT NULL,
  "item_code" varchar NOT NULL,
  "item_quantity" integer NOT NULL,
  "item_unit_price" numeric NOT NULL,
  "currency_id" integer NOT NULL,
  "agreed_delivery_date" date NOT NULL,
  "agreed_payment_date" date NOT NULL,
  "agreed_delivery_location_id" integer NOT NULL,
  CONSTRAINT "fact_purchase_order_created_date_fkey" FOREIGN KEY ("created_date") REFERENCES "dim_date" ("date_id"),
  CONSTRAINT "fact_purchase_order_last_updated_date_fkey" FOREIGN KEY ("last_updated_date") REFERENCES "dim_date" ("date_id"),
  CONSTRAINT "fact_purchase_order_staff_id_fkey" FOREIGN KEY ("staff_id") REFERENCES "dim_staff" ("staff_id"),
  CONSTRAINT "fact_purchase_order_counterparty_id_fkey" FOREIGN KEY ("counterparty_id") REFERENCES "dim_counterparty" ("counterparty_id"),
  CONSTRAINT "fact_purchase_order_currency_id_fkey" FOREIGN KEY ("currency_id") REFERENCES "dim_currency" ("currency_id"),
  CONSTRAINT "fact_purchase_order_agreed_delivery_date_fkey" FOREIGN KEY ("agreed_delivery_date") REFERENCES "dim_date" ("date_id"),
  CONSTRAINT "fact_purchase_order_agreed_payment_date_fkey" FOREIGN KEY ("agreed_payment_date") REFERENCES "dim_date" ("date_id"),
  CONSTRAINT "fact_purchase_order_agreed_delivery_location_id_fkey" FOREIGN KEY ("agreed_delivery_location_id") REFERENCES "dim_location" ("location_id")
);
CREATE UNIQUE INDEX "fact_purchase_order_version_key" ON "fact_purchase_order" ("purchase_order_id", "last_updated_date", "last_updated_time");
CREATE TABLE "fact_payment" (
  "payment_record_id" serial PRIMARY KEY,
  "payment_id" integer NOT NULL,
  "created_date" date NOT NULL,
  "created_time" time(3) without time zone NOT NULL,
  "last_updated_date" date NOT NULL,
  "last_updated_time" time(3) without time zone NOT NULL,
  "transaction_id" integer NOT NULL,
  "counterparty_id" integer NOT NULL,
  "payment_amount" numeric NOT NULL,
  "currency_id" integer NOT NULL,
  "payment_type_id" integer NOT NULL,
  "paid" boolean NOT NULL,
  "payment_date" date NOT NULL,
  CONSTRAINT "fact_payment_created_date_fkey" FOREIGN KEY ("created_date") REFERENCES "dim_date" ("date_id"),
  CONSTRAINT "fact_payment_last_updated_date_fkey" FOREIGN KEY ("last_updated_date") REFERENCES "dim_date" ("date_id"),
  CONSTRAINT "fact_payment_transaction_id_fkey" FOREIGN KEY ("transaction_id") REFERENCES "dim_transaction" ("transaction_id"),
  CONSTRAINT "fact_payment_counterparty_id_fkey" FOREIGN KEY ("counterparty_id") REFERENCES "dim_counterparty" ("counterparty_id"),
  CONSTRAINT "fact_payment_currency_id_fkey" FOREIGN KEY ("currency_id") REFERENCES "dim_currency" ("currency_id"),
  CONSTRAINT "fact_payment_payment_type_id_fkey" FOREIGN KEY ("payment_type_id") REFERENCES "dim_payment_type" ("payment_type_id"),
  CONSTRAINT "fact_payment_payment_date_fkey" FOREIGN KEY ("payment_date") REFERENCES "dim_date" ("date_id")
);
CREATE UNIQUE INDEX "fact_payment_version_key" ON "fact_payment" ("payment_id", "last_updated_date", "last_updated_time");
"""
