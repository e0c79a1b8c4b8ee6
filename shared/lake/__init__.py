"""The lake: its storage (local folder or S3), its layout, the documents the jobs hand each other, compaction."""
