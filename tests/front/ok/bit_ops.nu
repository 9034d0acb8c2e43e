bpf_tracepoint "syscalls:sys_enter_openat" {|e| emit {a: ($e.flags bit-and 0o777), b: ($e.flags bit-or 1), c: ($e.flags bit-xor 0xff), d: ($e.flags bit-shl 2), e: ($e.flags bit-shr 3)} }
