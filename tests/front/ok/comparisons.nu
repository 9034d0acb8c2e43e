bpf_tracepoint "syscalls:sys_exit_read" {|e| emit {lt: ($e.ret < 1), le: ($e.ret <= 2), gt: ($e.ret > 3), ge: ($e.ret >= 4), eq: ($e.ret == 5), ne: ($e.ret != 6)} }
