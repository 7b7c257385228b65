#!/usr/bin/env bash
# Fetch JDBC drivers into a local folder for `spark.jars` (the import's JDBC sources):
#   scripts/fetch_jdbc_jars.sh OUT_DIR PYSPARK_JARS_DIR GROUP:ARTIFACT:VERSION...
# As scripts/fetch_delta_jars.sh: Maven resolves the drivers and their runtime dependencies
# from a generated pom, and every jar whose artifact pyspark already ships (slf4j...) is
# dropped, so the session never holds two versions of one library.
set -euo pipefail
out=$1 pyspark_jars=$2
shift 2
command -v mvn >/dev/null || { echo "mvn is missing: install Maven (e.g. 'apt-get install maven') and retry." >&2; exit 1; }
[ -d "$pyspark_jars" ] || { echo "no pyspark jars folder at $pyspark_jars: run 'make install' first." >&2; exit 1; }
[ $# -gt 0 ] || { echo "fetch_jdbc_jars: give at least one group:artifact:version" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
deps=""
for coordinate in "$@"; do
  IFS=: read -r group artifact version <<<"$coordinate"
  [ -n "$group" ] && [ -n "$artifact" ] && [ -n "$version" ] || { echo "fetch_jdbc_jars: '$coordinate' is not group:artifact:version" >&2; exit 1; }
  deps+="<dependency><groupId>$group</groupId><artifactId>$artifact</artifactId><version>$version</version></dependency>"
done
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>contact_spark</groupId><artifactId>jdbc-jars</artifactId><version>0</version>
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
    *) echo "fetch_jdbc_jars: $artifact-$version.jar is not among the fetched jars" >&2; exit 1 ;;
  esac
done
echo "JDBC drivers in $out: ${kept[*]}"
