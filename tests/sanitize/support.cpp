// Linked into every executable of the sanitized tree (SPINOUT_SANITIZE): the
// sanitizers' default options, and one work-around for Csound. Environment variables
// (ASAN_OPTIONS, UBSAN_OPTIONS, LSAN_OPTIONS) still override these defaults.

extern "C" {

// Csound dlopens its opcode libraries for each instance and dlcloses them in
// csoundDestroy. What their static constructors allocated is then referenced only
// from unmapped memory, and LeakSanitizer reports it, with frames it can no longer
// name. Keeping every library loaded keeps that memory reachable and the reports
// readable; no leak of spinout's (or of Csound's, still mapped) is hidden by it.
int dlclose(void*) {
    return 0;
}

// Any UBSan report ends the process with a failure, with its stack. The symbolizer
// is named because Debian's llvm-14 installs it under a versioned name only.
const char* __ubsan_default_options() {
    return "print_stacktrace=1:halt_on_error=1:"
           "external_symbolizer_path=/usr/lib/llvm-14/bin/llvm-symbolizer";
}

const char* __asan_default_options() {
    return "detect_leaks=1:check_initialization_order=1:strict_init_order=1:"
           "external_symbolizer_path=/usr/lib/llvm-14/bin/llvm-symbolizer";
}

} // extern "C"
