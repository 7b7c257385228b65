#!/usr/bin/env bash
# Fetch the Delta Lake Spark jars into a local folder for `spark.jars`:
#   scripts/fetch_delta_jars.sh OUT_DIR DELTA_VERSION SPARK_MINOR PYSPARK_JARS_DIR
# Maven resolves io.delta:delta-spark_<SPARK_MINOR>_2.13 and its runtime dependencies from a
# tiny generated pom; every jar whose artifact pyspark already ships (Spark, Scala, Hadoop,
# Jackson, Parquet, log4j...) is then dropped, so the session never sees two versions of one
# library: only Delta's own jars and the few it needs beyond Spark stay.
set -euo pipefail
out=$1 version=$2 spark_minor=$3 pyspark_jars=$4
command -v mvn >/dev/null || { echo "mvn is missing: install Maven (e.g. 'apt-get install maven') and retry." >&2; exit 1; }
[ -d "$pyspark_jars" ] || { echo "no pyspark jars folder at $pyspark_jars: run 'make install' first." >&2; exit 1; }
# Delta publishes one artifact per supported Spark minor version (the one delta's own
# configure_spark_with_delta_pip asks for); the plain delta-spark_2.13 follows Delta's default
# Spark, which is ours (4.2) for Delta 4.4 but need not stay so when the pins move.
artifact="delta-spark_${spark_minor}_2.13"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>contact_spark</groupId><artifactId>delta-jars</artifactId><version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>io.delta</groupId><artifactId>${artifact}</artifactId><version>${version}</version></dependency>
  </dependencies>
</project>
POM
mvn -B -q -f "$work/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$work/jars"
rm -rf "$out"
mkdir -p "$out"
kept=()
for jar in "$work"/jars/*.jar; do
  name=$(basename "$jar" .jar)
  artifact_id=${name%-*}  # copy-dependencies names files <artifactId>-<version>.jar
  if compgen -G "$pyspark_jars/$artifact_id-[0-9]*.jar" >/dev/null; then
    continue
  fi
  cp "$jar" "$out/"
  kept+=("$name")
done
case " ${kept[*]} " in
  *" $artifact-$version "*) ;;
  *) echo "fetch_delta_jars: $artifact-$version.jar is not among the fetched jars" >&2; exit 1 ;;
esac
echo "Delta $version for Spark $spark_minor in $out: ${kept[*]}"
