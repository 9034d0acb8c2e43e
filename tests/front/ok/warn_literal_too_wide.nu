bpf_tracepoint "syscalls:sys_enter_openat" {|e| if $e.pid == 5000000000 { count } }
