bpf_tracepoint "syscalls:sys_exit_read" {|e| lhist $e.ret 0 1000 100 --by $e.comm }
