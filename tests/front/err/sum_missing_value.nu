bpf_tracepoint "syscalls:sys_exit_read" {|e| sum --by $e.comm }
