#!/usr/bin/env bash
# Compiles the Parley Android client stub and its check programs with plain javac against
# Debian's jars (no Gradle, no Maven Central needed).
#
#   apt-get install -y libokhttp-java libokio-java libandroid-json-java   # okhttp 3.x, okio 1.x, org.json
#   ./build.sh [OUT_DIR]                                      # default: ./build
#
# Output: OUT_DIR/classes (library + io.parley.client.Check + ProtocolSelfTest),
#         OUT_DIR/parley-client.jar (library only) and OUT_DIR/classpath (runtime classpath).
# Run:    java -cp "$(cat build/classpath)" io.parley.client.Check --help
#
# Jar lookup: $PARLEY_JAVA_LIBS (a directory) or /usr/share/java. Override single jars with
# OKHTTP_JAR, OKIO_JAR, JSON_JAR.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/build}"
LIBS="${PARLEY_JAVA_LIBS:-/usr/share/java}"

find_jar() { # first existing candidate
    for name in "$@"; do
        if [ -f "$LIBS/$name" ]; then echo "$LIBS/$name"; return 0; fi
    done
    return 1
}

OKHTTP_JAR="${OKHTTP_JAR:-$(find_jar okhttp.jar || true)}"
OKIO_JAR="${OKIO_JAR:-$(find_jar okio.jar || true)}"
# org.json: Debian's libandroid-json-java is the same org.json implementation Android ships.
JSON_JAR="${JSON_JAR:-$(find_jar com.android.json.jar json-android.jar json.jar || true)}"

missing=()
[ -n "$OKHTTP_JAR" ] && [ -f "$OKHTTP_JAR" ] || missing+=("okhttp.jar (apt-get install libokhttp-java)")
[ -n "$OKIO_JAR" ] && [ -f "$OKIO_JAR" ] || missing+=("okio.jar (apt-get install libokio-java)")
[ -n "$JSON_JAR" ] && [ -f "$JSON_JAR" ] || missing+=("org.json jar (apt-get install libandroid-json-java)")
command -v javac >/dev/null || missing+=("javac (a JDK)")
if [ "${#missing[@]}" -gt 0 ]; then
    printf 'build.sh: missing %s\n' "${missing[@]}" >&2
    exit 3
fi

CP="$OKHTTP_JAR:$OKIO_JAR:$JSON_JAR"
rm -rf "$OUT/classes"
mkdir -p "$OUT/classes"

# --release 8: the library must stay within the Java 8 language and APIs that Android supports.
mapfile -t MAIN_SRC < <(find "$HERE/src/main/java" -name '*.java' | sort)
mapfile -t CHECK_SRC < <(find "$HERE/src/check/java" -name '*.java' | sort)
javac --release 8 -Xlint:all,-options -Werror -encoding UTF-8 -cp "$CP" -d "$OUT/classes" "${MAIN_SRC[@]}"
(cd "$OUT/classes" && jar cf "$OUT/parley-client.jar" io)
javac --release 8 -Xlint:all,-options -encoding UTF-8 -cp "$CP:$OUT/classes" -d "$OUT/classes" "${CHECK_SRC[@]}"

echo "$OUT/classes:$CP" > "$OUT/classpath"
echo "built $OUT/parley-client.jar; classpath in $OUT/classpath"
