"""What a job runs on: the job context and its bookmarks, the Spark session, the job registry, the Glue seam."""
