bpf_tracepoint "syscalls:sys_enter_openat" {|e| if $e.filename not-starts-with "/" { emit $e.filename } }
