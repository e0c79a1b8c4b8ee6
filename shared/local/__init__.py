"""Local tooling, never shipped to Glue: the CLI, the in-process workflow, status, the embedded PostgreSQL,
the ToteSys seeder and simulator, and the Glue package builder. The zip Glue runs leaves this package out."""
