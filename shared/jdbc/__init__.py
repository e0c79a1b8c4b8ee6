"""The two PostgreSQL databases over JDBC: ToteSys's incremental reads and the warehouse's load."""
