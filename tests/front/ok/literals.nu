bpf_tracepoint "syscalls:sys_exit_read" {|e| emit {big: ($e.ret > 1mb), slow: ($e.ret > 5ms), t: true, n: -42, s: "text"} }
