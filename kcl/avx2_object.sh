#!/bin/sh
# kcl/avx2_object.sh - makes the AVX2 objects of kcl/ one self-contained relocatable object, and
# proves it (see kcl/mld_records_avx2.hpp for why).
#
# Usage: avx2_object.sh LD OBJCOPY NM READELF OUT ENTRY INSTRUMENTED OBJECT...
#
# `ld -r` joins the objects; objcopy keeps ENTRY as the only global symbol (-G: every other defined
# symbol, weak COMDAT copies of inline functions and templates included, becomes local) and removes
# the COMDAT groups (a group is merged with other objects' groups of the same name, whatever its
# symbols' binding, so the final link could discard one copy or the other). Then the checks, each of
# which fails the build: the only defined global or weak symbol is ENTRY; no COMDAT group is left; no
# code runs uncalled (.init_array, .ctors, .preinit_array, .fini_array, .dtors): it would run on every
# CPU. INSTRUMENTED=1 (sanitizer or fuzzer builds) allows the instrumentation's module constructors,
# which only register the object with the runtime; release builds have none.
set -eu
ld=$1 objcopy=$2 nm=$3 readelf=$4 out=$5 entry=$6 instrumented=$7
shift 7
rm -f "$out" "$out.joined"
"$ld" -r -o "$out.joined" "$@"
"$objcopy" -G "$entry" --remove-section=.group "$out.joined" "$out"
rm -f "$out.joined"

fail() {
  echo "avx2_object.sh: $out: $1" >&2
  rm -f "$out"
  exit 1
}

globals=$("$nm" -g --defined-only "$out" | awk '{ print $NF }')
[ "$globals" = "$entry" ] || fail "defines global or weak symbols besides $entry: $(echo "$globals" | tr '\n' ' ')"
if "$readelf" -gW "$out" | grep -q "COMDAT group"; then
  fail "still has COMDAT groups"
fi
if [ "$instrumented" != 1 ] \
   && "$readelf" -SW "$out" | grep -Eq '\.(init_array|preinit_array|fini_array|ctors|dtors)'; then
  fail "has code that runs at start or exit (a static constructor or destructor)"
fi
