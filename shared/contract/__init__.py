"""The data contract (SPEC.md) as code: the ToteSys source tables, the warehouse star, and the row checks."""
