bpf_tracepoint "syscalls:sys_exit_read" {|e| if $e.ret in [0 1 2] { count --by $e.ret } }
