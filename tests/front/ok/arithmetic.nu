bpf_tracepoint "syscalls:sys_exit_read" {|e| emit {a: ($e.ret + 1), b: ($e.ret - 2), c: ($e.ret * 3), d: ($e.ret / 4), e: ($e.ret mod 5), f: ($e.ret // 6)} }
