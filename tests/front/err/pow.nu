bpf_tracepoint "syscalls:sys_exit_read" {|e| emit ($e.ret ** 2) }
