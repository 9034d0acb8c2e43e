bpf_tracepoint "syscalls:sys_exit_read" {|e| if ($e.ret > 0 and $e.ret < 100) or not ($e.pid > 1) { count } }
