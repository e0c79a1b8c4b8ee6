#!/usr/bin/env bash
# `make docker-run`, inside the Glue 5.0 image (compose service `jobs`): the three Glue scripts,
# extract -> transform -> load, each only if the one before succeeded, run the way AWS documents for
# this image (`spark-submit /home/hadoop/workspace/<script>.py --JOB_NAME ...`) with what
# `make package` built and Terraform uploads: dist/glue_jobs/<job>.py and dist/shared.zip
# (--py-files, the local twin of --extra-py-files), dist/*.pem (--files, the twin of --extra-files).
#
# The job arguments are the ones terraform/glue.tf gives every job, read from the environment
# (docker-compose.yml sets them): LAKE_ROOT, INGESTION_ROOT, CATALOG_DATABASE, TOTESYS_SECRET_ID,
# WAREHOUSE_SECRET_ID, LOOKBACK_MINUTES. S3 and Secrets Manager are the compose `moto` service
# (AWS_ENDPOINT_URL); docker/local_aws.py has created the buckets and secrets before this runs.
# Checked by tests/test_docker_files.py, which runs this script with a recording spark-submit.
set -euo pipefail

WORKSPACE=${WORKSPACE:-/home/hadoop/workspace}
JOB_PREFIX=${JOB_PREFIX:-totes}
: "${LAKE_ROOT:?}" "${INGESTION_ROOT:?}" "${CATALOG_DATABASE:?}" "${LOOKBACK_MINUTES:?}"
: "${TOTESYS_SECRET_ID:?}" "${WAREHOUSE_SECRET_ID:?}" "${AWS_ENDPOINT_URL:?}" "${TOTES_JDBC_JAR:?}"
CATALOG_DIR=${CATALOG_DIR:-/tmp/catalog}

if [[ ! -f $WORKSPACE/shared.zip ]]; then
  echo "$WORKSPACE/shared.zip missing: run \`make package\` on the host first (make docker-run does)" >&2
  exit 2
fi

spark_options=(
  --py-files "$WORKSPACE/shared.zip"
  # Glue brings its own PostgreSQL driver; here it is the image's. On the driver's class path too, so
  # java.sql.DriverManager (the connectivity probe, the load's transaction) finds it.
  --jars "$TOTES_JDBC_JAR"
  --driver-class-path "$TOTES_JDBC_JAR"
  # s3:// through S3A to the moto service (path-style: the service's host name is not a bucket domain).
  --conf spark.hadoop.fs.s3.impl=org.apache.hadoop.fs.s3a.S3AFileSystem
  --conf "spark.hadoop.fs.s3a.endpoint=$AWS_ENDPOINT_URL"
  --conf spark.hadoop.fs.s3a.path.style.access=true
  --conf spark.hadoop.fs.s3a.connection.ssl.enabled=false
  --conf "spark.hadoop.fs.s3a.endpoint.region=${AWS_REGION:-eu-west-2}"
  # The catalog: Spark's Derby metastore on a compose volume, where Glue has its Data Catalog.
  --conf spark.sql.catalogImplementation=hive
  --conf spark.hadoop.hive.metastore.client.factory.class=org.apache.hadoop.hive.ql.metadata.SessionHiveMetaStoreClientFactory
  --conf "spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName=$CATALOG_DIR/metastore_db;create=true"
  --conf "spark.sql.warehouse.dir=$CATALOG_DIR/warehouse"
  --conf "spark.driver.extraJavaOptions=-Duser.timezone=UTC -Dderby.system.home=$CATALOG_DIR"
)
shopt -s nullglob
bundles=("$WORKSPACE"/*.pem)
shopt -u nullglob
if ((${#bundles[@]})); then
  spark_options+=(--files "$(IFS=,; echo "${bundles[*]}")")
fi

for job in extract transform load; do
  echo "== $JOB_PREFIX-$job: spark-submit $WORKSPACE/glue_jobs/$job.py" >&2
  spark-submit "${spark_options[@]}" "$WORKSPACE/glue_jobs/$job.py" \
    --JOB_NAME "$JOB_PREFIX-$job" \
    --LAKE_ROOT "$LAKE_ROOT" \
    --INGESTION_ROOT "$INGESTION_ROOT" \
    --CATALOG_DATABASE "$CATALOG_DATABASE" \
    --TOTESYS_SECRET_ID "$TOTESYS_SECRET_ID" \
    --WAREHOUSE_SECRET_ID "$WAREHOUSE_SECRET_ID" \
    --LOOKBACK_MINUTES "$LOOKBACK_MINUTES"
done
