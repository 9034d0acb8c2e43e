let limit = 5
bpf_tracepoint "syscalls:sys_enter_openat" {|e| if $e.pid > $limit { count } }
