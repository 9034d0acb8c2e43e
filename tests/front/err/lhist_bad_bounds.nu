bpf_tracepoint "syscalls:sys_exit_read" {|e| lhist $e.ret 100 0 10 }
