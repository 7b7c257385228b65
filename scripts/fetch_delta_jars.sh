#!/usr/bin/env bash
# Fetch the Delta Lake Spark jars into a local folder for `spark.jars`:
#   scripts/fetch_delta_jars.sh OUT_DIR DELTA_VERSION SPARK_MINOR PYSPARK_JARS_DIR
# Delta publishes one artifact per supported Spark minor version (the one delta's own
# configure_spark_with_delta_pip asks for); the plain delta-spark_2.13 follows Delta's default
# Spark, which is ours (4.2) for Delta 4.4 but need not stay so when the pins move.
set -euo pipefail
out=$1 version=$2 spark_minor=$3 pyspark_jars=$4
exec "$(dirname "$0")/fetch_maven_jars.sh" "$out" "$pyspark_jars" "io.delta:delta-spark_${spark_minor}_2.13:${version}"
