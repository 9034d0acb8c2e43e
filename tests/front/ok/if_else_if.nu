bpf_tracepoint "syscalls:sys_exit_read" {|e|
    if $e.ret < 0 {
        count --as errors
    } else if $e.ret == 0 {
        count --as eof
    } else {
        count --as data
    }
}
