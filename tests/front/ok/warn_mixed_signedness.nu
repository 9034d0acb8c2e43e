bpf_tracepoint "syscalls:sys_enter_pread64" {|e| if $e.pos > $e.count { count } }
