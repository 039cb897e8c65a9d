package lambda

import "github.com/cutoverhq/cutover/source"

func readServerless(p *part, opts source.Options) ([]*function, error) { return nil, nil }
