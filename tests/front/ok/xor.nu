bpf_tracepoint "syscalls:sys_exit_read" {|e| if ($e.ret > 0) xor ($e.pid > 1000) { count } }
