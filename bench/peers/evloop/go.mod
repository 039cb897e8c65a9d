module github.com/cutoverhq/cutover/bench/peers/evloop

go 1.26
