bpf_tracepoint "syscalls:sys_enter_openat" {|e| if $e.filename == 3 { count } }
