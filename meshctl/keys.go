package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshgate/meshgate/internal/auth/apikey"
	"github.com/meshgate/meshgate/internal/config"
	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// API keys are made here, on the operator's machine: only their hash ever
// leaves it. The cluster holds apikey resources named by the key's id
// ({consumer, hash}), and shows them by id and consumer only.

// issueAttempts bounds the retries when a new key's id is taken (1 in 2^32
// per key in use).
const issueAttempts = 4

func keysCommand() *cli.Command {
	return &cli.Command{
		Name: "keys", Usage: "API keys: issue, list, revoke (cluster-wide); hash a key for a file",
		Subcommands: []*cli.Command{
			{Name: "issue", Usage: "make a key for a consumer and print it once; only its hash goes to the cluster", ArgsUsage: "CONSUMER",
				Action: withSession(issueKey)},
			{Name: "list", Usage: "the keys the node knows, by id and consumer (never the keys)",
				Flags:  []cli.Flag{&cli.StringFlag{Name: "consumer", Usage: "only this consumer's keys"}},
				Action: withSession(listKeys)},
			{Name: "revoke", Usage: "revoke a key on every node (also one from the nodes' files)", ArgsUsage: "ID",
				Action: withSession(func(c *cli.Context, s *session) error {
					if c.NArg() != 1 {
						return fmt.Errorf("usage: meshctl keys revoke ID (the id of `meshctl keys list`)")
					}
					id := c.Args().First()
					ctx, cancel := s.call(c)
					defer cancel()
					r, err := s.client.DeleteResource(ctx, &adminv1.DeleteResourceRequest{Kind: config.KindAPIKey, Name: id})
					if err != nil {
						return err
					}
					if !r.Deleted {
						fmt.Fprintf(stdout, "API key %s was already revoked\n", id)
						return nil
					}
					fmt.Fprintf(stdout, "API key %s revoked; every node refuses it within a second\n", id)
					return nil
				})},
			{Name: "hash", Usage: "read a key on stdin and print its hash, the form consumers[].api_keys holds",
				Action: func(c *cli.Context) error {
					line, err := bufio.NewReader(stdin).ReadString('\n')
					if err != nil && err != io.EOF {
						return cli.Exit(err.Error(), 1)
					}
					key := strings.TrimSpace(line)
					switch {
					case key == "":
						return cli.Exit("meshctl keys hash: no key on stdin (`meshctl keys hash < key.txt`)", 2)
					case len(key) > apikey.MaxKeyLen:
						return cli.Exit(fmt.Sprintf("meshctl keys hash: the key is longer than %d bytes; the edge refuses such keys", apikey.MaxKeyLen), 2)
					case strings.HasPrefix(key, apikey.HashPrefix):
						return cli.Exit("meshctl keys hash: this is a hash already, not a key", 2)
					}
					hash := apikey.HashOf(key)
					fmt.Fprintln(stdout, hash)
					fmt.Fprintf(stderr, "id %s\n", config.KeyID(hash))
					return nil
				}},
		},
	}
}

func issueKey(c *cli.Context, s *session) error {
	if c.NArg() != 1 {
		return fmt.Errorf("usage: meshctl keys issue CONSUMER")
	}
	consumer := c.Args().First()
	var key, id string
	for attempt := 1; ; attempt++ {
		k, hash, err := apikey.Generate()
		if err != nil {
			return err
		}
		value, err := yaml.Marshal(config.APIKey{Consumer: consumer, Hash: hash})
		if err != nil {
			return err
		}
		ctx, cancel := s.call(c)
		r, err := s.client.ApplyResource(ctx, &adminv1.ApplyResourceRequest{Kind: config.KindAPIKey, Yaml: string(value)})
		cancel()
		if status.Code(err) == codes.AlreadyExists && attempt < issueAttempts {
			continue // the id is taken: another key
		}
		if err != nil {
			return err
		}
		key, id = k, r.Name
		break
	}
	warning := fmt.Sprintf("Store this key now: it is shown this once and cannot be shown again (the cluster keeps only its hash).\n"+
		"Revoke it with: meshctl keys revoke %s\n", id)
	if s.out != "table" {
		msg, err := structpb.NewStruct(map[string]any{"key": key, "id": id, "consumer": consumer})
		if err != nil {
			return err
		}
		fmt.Fprint(stderr, warning)
		return render(s.out, msg, "", nil)
	}
	fmt.Fprintf(stdout, "API key %s of consumer %s:\n\n    %s\n\n%s", id, consumer, key, warning)
	return nil
}

// keyConsumer reads the consumer of a key as the admin API shows it.
func keyConsumer(r *adminv1.Resource) string {
	var v struct {
		Consumer string `yaml:"consumer"`
	}
	_ = yaml.Unmarshal([]byte(r.Yaml), &v)
	return v.Consumer
}

func listKeys(c *cli.Context, s *session) error {
	ctx, cancel := s.call(c)
	defer cancel()
	r, err := s.client.ListResources(ctx, &adminv1.ListResourcesRequest{Kind: config.KindAPIKey})
	if err != nil {
		return err
	}
	if only := c.String("consumer"); only != "" {
		kept := r.Resources[:0]
		for _, k := range r.Resources {
			if keyConsumer(k) == only {
				kept = append(kept, k)
			}
		}
		r.Resources = kept
	}
	return render(s.out, r, "ID\tCONSUMER\tSTATE\tORIGIN\tVERSION", func(w io.Writer) {
		for _, k := range r.Resources {
			state, origin := "active", k.Origin
			if origin == "cluster-deleted" {
				state, origin = "revoked", "cluster"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.Name, dash(keyConsumer(k)), state, origin, dash(k.Version))
		}
	})
}
