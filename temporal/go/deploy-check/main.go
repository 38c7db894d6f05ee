// Command deploy-check checks the project's container files without a Docker engine:
//
//	deploy-check compose FILE     loads FILE as `docker compose config` does (compose-go:
//	                              the Compose specification's JSON schema, interpolation,
//	                              normalisation, consistency checks) and prints the
//	                              resolved project as JSON.
//	deploy-check dockerfile FILE  parses and lints FILE with BuildKit's Dockerfile
//	                              frontend, the checks `docker build --check` runs, and
//	                              prints the build args, stages and instructions as JSON.
//
// Exit status 1 with the problem on stderr when the file is invalid or has lint
// warnings; 2 on wrong usage.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	digest "github.com/opencontainers/go-digest"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: deploy-check compose|dockerfile FILE")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "compose":
		err = checkCompose(os.Args[2])
	case "dockerfile":
		err = checkDockerfile(os.Args[2])
	default:
		fmt.Fprintf(os.Stderr, "unknown check %q: expected compose or dockerfile\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[2], err)
		os.Exit(1)
	}
}

func printJSON(v any) error {
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	return out.Encode(v)
}

func checkCompose(file string) error {
	// No environment and no .env: the file must stand on its own defaults.
	options, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnv([]string{}),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	return printJSON(project)
}

// noRegistry answers every base image lookup with an empty linux/amd64 image: the lint
// rules need the image's config only for its environment, and nothing here may pull.
type noRegistry struct{}

func (noRegistry) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	config := []byte(`{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}}`)
	return ref, digest.FromBytes(config), config, nil
}

type command struct {
	Name     string `json:"name"`
	Original string `json:"original"`
}

type stage struct {
	Name     string    `json:"name"`
	BaseName string    `json:"baseName"`
	Commands []command `json:"commands"`
}

type arg struct {
	Name    string  `json:"name"`
	Default *string `json:"default"`
}

func checkDockerfile(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	ctx := context.Background()
	// The source map only names the file in locations; it needs some definition to point at.
	sourceMap := llb.NewSourceMap(nil, file, "Dockerfile", data)
	if sourceMap.Definition, err = llb.Scratch().Marshal(ctx); err != nil {
		return err
	}
	results, err := dockerfile2llb.DockerfileLint(ctx, data, dockerfile2llb.ConvertOpt{
		SourceMap:    sourceMap,
		MetaResolver: noRegistry{},
	})
	if err != nil {
		return err
	}
	if results.Error != nil {
		return fmt.Errorf("%s", results.Error.Message)
	}
	if len(results.Warnings) > 0 {
		for _, w := range results.Warnings {
			line := int32(0)
			if w.Location != nil && len(w.Location.Ranges) > 0 {
				line = w.Location.Ranges[0].Start.Line
			}
			fmt.Fprintf(os.Stderr, "%s:%d: %s: %s (%s)\n", file, line, w.RuleName, w.Detail, w.URL)
		}
		return fmt.Errorf("%d lint warning(s)", len(results.Warnings))
	}

	parsed, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return err
	}
	stages, metaArgs, err := instructions.Parse(parsed.AST, nil)
	if err != nil {
		return err
	}
	out := struct {
		Args   []arg   `json:"args"`
		Stages []stage `json:"stages"`
	}{Args: []arg{}, Stages: []stage{}}
	for _, m := range metaArgs {
		for _, a := range m.Args {
			out.Args = append(out.Args, arg{Name: a.Key, Default: a.Value})
		}
	}
	for _, s := range stages {
		st := stage{Name: s.Name, BaseName: s.BaseName, Commands: []command{}}
		for _, c := range s.Commands {
			st.Commands = append(st.Commands, command{Name: c.Name(), Original: fmt.Sprint(c)})
		}
		out.Stages = append(out.Stages, st)
	}
	return printJSON(out)
}
