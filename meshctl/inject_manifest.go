package main

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// sidecarName is the injected container's name: finding it in a pod spec
// is how inject knows a workload is injected already.
const sidecarName = "meshgate-sidecar"

// optOutAnnotation, "false" on a workload or its pod template, leaves it
// alone.
const optOutAnnotation = "meshgate.io/inject"

// workloadKinds are the kinds inject rewrites, by apiVersion, with the
// path of their pod spec. Jobs and CronJobs are left out on purpose: a
// sidecar that never exits would keep their pods from completing.
var workloadKinds = map[string]struct {
	apiVersion string
	podSpec    []string
}{
	"Deployment":  {"apps/v1", []string{"spec", "template", "spec"}},
	"StatefulSet": {"apps/v1", []string{"spec", "template", "spec"}},
	"DaemonSet":   {"apps/v1", []string{"spec", "template", "spec"}},
	"Pod":         {"v1", []string{"spec"}},
}

// piece is one input document and what inject made of it, for --dry-run.
type piece struct{ old, new []byte }

// injectResult is the rewritten stream, by input document.
type injectResult struct {
	pieces []piece
	notes  []string // for stderr: what was done or left, and warnings
}

func (r *injectResult) output() []byte {
	var b bytes.Buffer
	for _, p := range r.pieces {
		b.Write(p.new)
	}
	return b.Bytes()
}

// docError is a problem of one input document, named by its number and
// the line it starts on.
type docError struct {
	file      string
	doc, line int
	what      string // "Deployment web", or "" before the kind is known
	err       error
}

func (e *docError) Error() string {
	what := ""
	if e.what != "" {
		what = ", " + e.what
	}
	return fmt.Sprintf("%s: document %d (line %d%s): %v", e.file, e.doc, e.line, what, e.err)
}

// injectManifests rewrites every workload of a multi-document stream; file
// names the stream in errors.
func injectManifests(file string, data []byte, o *injectOptions) (*injectResult, error) {
	chunks := splitDocuments(data)
	docs := make([]*yaml.Node, len(chunks))
	numbers := make([]int, len(chunks))
	n := 0
	existing := map[string]bool{} // ConfigMaps in the stream, by namespace/name
	for i, c := range chunks {
		doc, err := parseChunk(c)
		if doc != nil || err != nil {
			n++
		}
		numbers[i] = n
		if err != nil {
			return nil, &docError{file: file, doc: n, line: c.line, err: fmt.Errorf("not YAML: %v", err)}
		}
		docs[i] = doc
		if doc != nil && str(doc.Content[0], "kind") == "ConfigMap" {
			existing[str(doc.Content[0], "metadata", "namespace")+"/"+str(doc.Content[0], "metadata", "name")] = true
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no YAML document", file)
	}
	if o.service != "" && countWorkloads(docs) > 1 {
		return nil, fmt.Errorf("%s: --service names one service, and there are %d workloads to inject: leave it out (each takes its app label or name) or inject them one by one", file, countWorkloads(docs))
	}

	r := &injectResult{}
	for i, c := range chunks {
		old := append([]byte(c.sep), c.body...)
		p := piece{old: old, new: old}
		if docs[i] != nil {
			w := &workloadDoc{file: file, doc: numbers[i], line: c.line, root: docs[i].Content[0], opts: o}
			changed, cm, err := w.inject(existing)
			r.notes = append(r.notes, w.notes...)
			if err != nil {
				return nil, err
			}
			if changed {
				body, err := encodeDocument(docs[i])
				if err != nil {
					return nil, w.errorf("%v", err)
				}
				// The ConfigMap goes first (the pods need it); the
				// workload keeps its separator line and its comments.
				var b bytes.Buffer
				if cm != nil {
					if c.sep != "" {
						b.WriteString("---\n")
					}
					b.Write(cm)
					if c.sep == "" {
						b.WriteString("---\n")
					}
				}
				b.WriteString(c.sep)
				b.Write(body)
				p.new = b.Bytes()
			}
		}
		r.pieces = append(r.pieces, p)
	}
	// Each piece but the last must end its line, or the next one's
	// separator would join it.
	for i := 0; i+1 < len(r.pieces); i++ {
		if nb := r.pieces[i].new; len(nb) > 0 && nb[len(nb)-1] != '\n' {
			r.pieces[i].new = append(nb[:len(nb):len(nb)], '\n')
		}
	}
	return r, nil
}

func countWorkloads(docs []*yaml.Node) int {
	n := 0
	for _, d := range docs {
		if d == nil {
			continue
		}
		if _, ok := workloadKinds[str(d.Content[0], "kind")]; ok {
			n++
		}
	}
	return n
}

// workloadDoc is one document being injected.
type workloadDoc struct {
	file      string
	doc, line int
	what      string
	root      *yaml.Node
	opts      *injectOptions
	notes     []string
}

func (w *workloadDoc) errorf(format string, args ...any) error {
	return &docError{file: w.file, doc: w.doc, line: w.line, what: w.what, err: fmt.Errorf(format, args...)}
}

func (w *workloadDoc) note(format string, args ...any) {
	prefix := fmt.Sprintf("%s: document %d", w.file, w.doc)
	if w.what != "" {
		prefix += " (" + w.what + ")"
	}
	w.notes = append(w.notes, prefix+": "+fmt.Sprintf(format, args...))
}

// inject adds the sidecar to the document if it is a workload not yet
// injected: changed says whether it did, cm is the ConfigMap to write
// before it (nil when the stream has it already).
func (w *workloadDoc) inject(existing map[string]bool) (changed bool, cm []byte, err error) {
	if w.root.Kind != yaml.MappingNode {
		return false, nil, w.errorf("not a Kubernetes object (a mapping with apiVersion and kind), but %s", kindName(w.root.Kind))
	}
	kind := str(w.root, "kind")
	if kind == "" {
		return false, nil, w.errorf("not a Kubernetes object: no kind")
	}
	name := str(w.root, "metadata", "name")
	w.what = strings.TrimSpace(kind + " " + name)
	k, ok := workloadKinds[kind]
	if !ok {
		if kind == "List" {
			w.note("a List: its items are not injected (write them as documents of their own)")
		}
		return false, nil, nil // passed through untouched
	}
	if v := str(w.root, "apiVersion"); v != k.apiVersion {
		return false, nil, w.errorf("apiVersion %q: meshctl inject knows %s %s", v, k.apiVersion, kind)
	}
	if name == "" {
		return false, nil, w.errorf("metadata.name is required: the sidecar's ConfigMap is named after it")
	}
	spec := w.root
	var tmplMeta *yaml.Node // the pod's metadata: the template's, or a Pod's own
	for i, key := range k.podSpec {
		if key == "spec" && i == len(k.podSpec)-1 {
			tmplMeta = get(spec, "metadata")
		}
		spec = get(spec, key)
		if spec == nil || spec.Kind != yaml.MappingNode {
			return false, nil, w.errorf("%s is missing or not a mapping: there is no pod to stand beside", strings.Join(k.podSpec[:i+1], "."))
		}
	}
	where := strings.Join(k.podSpec, ".")
	containers := get(spec, "containers")
	if containers == nil || containers.Kind != yaml.SequenceNode || len(containers.Content) == 0 {
		return false, nil, w.errorf("%s.containers is empty: there is no app for a sidecar to stand beside", where)
	}
	if optedOut(get(w.root, "metadata")) || optedOut(tmplMeta) {
		w.note("left alone: %s is \"false\"", optOutAnnotation)
		return false, nil, nil
	}
	for _, c := range containers.Content {
		if str(c, "name") == sidecarName {
			w.note("has a %s container already: left as it is", sidecarName)
			return false, nil, nil
		}
	}

	app := containers.Content[0]
	if app.Kind != yaml.MappingNode {
		return false, nil, w.errorf("%s.containers[0] is not a mapping", where)
	}
	svc, subset := w.serviceOf(name, get(tmplMeta, "labels"), get(get(w.root, "metadata"), "labels"))
	port, err := w.appPort(app, where)
	if err != nil {
		return false, nil, err
	}
	namespace := str(w.root, "metadata", "namespace")
	cmName := name + "-" + sidecarName
	sidecarYAML, err := sidecarConfig(w.opts, sidecarSpec{name: svc, subset: subset, appPort: port,
		host: "0.0.0.0", adminHost: "0.0.0.0", workloadAPI: w.workloadAPI(),
		header: fmt.Sprintf("# The sidecar of service %s (%s), written by meshctl inject; fields: docs/sidecar.md.\n", svc, w.what)})
	if err != nil {
		return false, nil, w.errorf("%v", err)
	}
	if err := w.addToPod(spec, where, cmName); err != nil {
		return false, nil, err
	}
	if sa := str(spec, "serviceAccountName"); sa != svc {
		if sa == "" {
			sa = "default"
		}
		w.note("runs as service account %q: with SPIRE's usual ID template (spiffe://TRUST-DOMAIN/ns/NS/sa/SA) its SPIFFE ID "+
			"does not end in the service's name %q, and discovery offers a sidecar only when it does: set serviceAccountName: %s "+
			"or register a matching ID (docs/sidecar.md)", sa, svc, svc)
	}
	w.note("injected: service %s, app port %d, ConfigMap %s", svc, port, cmName)
	if existing[namespace+"/"+cmName] {
		return true, nil, nil
	}
	existing[namespace+"/"+cmName] = true
	cm, err = configMapYAML(cmName, namespace, svc, sidecarYAML)
	if err != nil {
		return false, nil, w.errorf("%v", err)
	}
	return true, cm, nil
}

func optedOut(meta *yaml.Node) bool {
	return str(meta, "annotations", optOutAnnotation) == "false"
}

// serviceOf is the mesh service a workload's pods are: --service, else the
// pod's (or workload's) app.kubernetes.io/name or app label, else the
// workload's name; and its subset: --subset, else a version label.
func (w *workloadDoc) serviceOf(name string, labelSets ...*yaml.Node) (svc, subset string) {
	svc, subset = w.opts.service, w.opts.subset
	for _, labels := range labelSets {
		for _, k := range []string{"app.kubernetes.io/name", "app"} {
			if v := str(labels, k); svc == "" && v != "" {
				svc = v
			}
		}
		for _, k := range []string{"version", "app.kubernetes.io/version"} {
			if v := str(labels, k); subset == "" && v != "" {
				subset = v
			}
		}
	}
	if svc == "" {
		svc = name
	}
	return svc, subset
}

// appPort is --app-port, else the app container's first containerPort.
func (w *workloadDoc) appPort(app *yaml.Node, where string) (int, error) {
	if w.opts.appPort != 0 {
		return w.opts.appPort, nil
	}
	ports := get(app, "ports")
	if ports != nil && ports.Kind == yaml.SequenceNode && len(ports.Content) > 0 {
		var p struct {
			ContainerPort int `yaml:"containerPort"`
		}
		if err := ports.Content[0].Decode(&p); err == nil && p.ContainerPort > 0 && p.ContainerPort < 65536 {
			return p.ContainerPort, nil
		}
		return 0, w.errorf("%s.containers[0].ports[0].containerPort is not a port number", where)
	}
	return 0, w.errorf("%s.containers[0] (%s) declares no containerPort: give the app's port with --app-port", where, str(app, "name"))
}

// workloadAPI is the sidecar's Workload API address inside the pod.
func (w *workloadDoc) workloadAPI() string {
	if w.opts.identity == identitySpire {
		return "unix://" + spireMount + "/" + baseName(w.opts.identityPath)
	}
	return "unix://" + csiMount + "/" + w.opts.identityPath
}

func baseName(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }
