bpf_tracepoint "syscalls:sys_exit_read" {|e| if $e.ret > 0 { sum $e.ret --by $e.comm } }
