bpf_tracepoint "syscalls:sys_enter_read" {|e| if $e.count < 0 { count } }
