bpf_tracepoint "syscalls:sys_exit_read" {|e|
    count --as n
    sum $e.ret --as n
}
