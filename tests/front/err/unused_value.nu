bpf_tracepoint "syscalls:sys_exit_read" {|e| $e.ret + 1 }
