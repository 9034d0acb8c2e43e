bpf_tracepoint "syscalls:sys_exit_read" {|e| hist $e.ret }
