#!/usr/bin/env bash
# Fetch Maven artifacts and their runtime dependencies into a local folder for `spark.jars`
# (the Delta jars, the JDBC drivers of the import):
#   scripts/fetch_maven_jars.sh OUT_DIR PYSPARK_JARS_DIR GROUP:ARTIFACT:VERSION...
# Maven resolves them from a tiny generated pom; every jar whose artifact pyspark already
# ships (Spark, Scala, Hadoop, Jackson, Parquet, log4j, slf4j...) is then dropped, so the
# session never sees two versions of one library: only the artifacts' own jars and the few
# they need beyond Spark stay.
set -euo pipefail
out=$1 pyspark_jars=$2
shift 2
command -v mvn >/dev/null || { echo "mvn is missing: install Maven (e.g. 'apt-get install maven') and retry." >&2; exit 1; }
[ -d "$pyspark_jars" ] || { echo "no pyspark jars folder at $pyspark_jars: run 'make install' first." >&2; exit 1; }
[ $# -gt 0 ] || { echo "fetch_maven_jars: give at least one group:artifact:version" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
deps=""
for coordinate in "$@"; do
  IFS=: read -r group artifact version <<<"$coordinate"
  [ -n "$group" ] && [ -n "$artifact" ] && [ -n "$version" ] || { echo "fetch_maven_jars: '$coordinate' is not group:artifact:version" >&2; exit 1; }
  deps+="<dependency><groupId>$group</groupId><artifactId>$artifact</artifactId><version>$version</version></dependency>"
done
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>contact_spark</groupId><artifactId>spark-jars</artifactId><version>0</version>
  <packaging>pom</packaging>
  <dependencies>$deps</dependencies>
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
for coordinate in "$@"; do
  IFS=: read -r _ artifact version <<<"$coordinate"
  case " ${kept[*]} " in
    *" $artifact-$version "*) ;;
    *) echo "fetch_maven_jars: $artifact-$version.jar is not among the fetched jars" >&2; exit 1 ;;
  esac
done
echo "In $out: ${kept[*]}"
