bpf_profile {|ctx| count --by $ctx.ip }
