bpf_tracepoint "syscalls:sys_exit_read" {|e| lhist $e.ret 0 $e.pid 10 }
