// Command protofixtures writes the fixtures of k3py's protobuf decoder tests.
//
// For each object below it writes <name>.pb, the request body client-go sends for it (the
// "k8s\x00" magic and a runtime.Unknown envelope, from the protobuf serializer behind a
// version encoder, as typed clients do), and <name>.json, what kube-apiserver's JSON
// serializer writes for the object it decodes from that body (encoding/json, indented).
// quantities.json maps strings to what resource.ParseQuantity + MarshalJSON make of them
// (null: a parse error); durations.json maps nanoseconds to time.Duration.String.
//
// Run it through `python build/protos.py --fixtures`, which builds it in a scratch module
// against the same k8s.io module versions as the descriptor:
//
//	go run . <output directory>
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	jsonserializer "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

var (
	created = metav1.NewTime(time.Date(2024, 5, 17, 8, 30, 15, 0, time.UTC))
	micro   = metav1.NewMicroTime(time.Date(2024, 5, 17, 8, 30, 15, 123456789, time.UTC))
	labels  = map[string]string{"app": "web", "tier": "frontend"}
)

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{
		Containers: []corev1.Container{{
			Name:  "web",
			Image: "nginx:1.27",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
			Resources: corev1.ResourceRequirements{
				Limits: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("500m"),
					corev1.ResourceMemory: resource.MustParse("1Gi"),
				},
				Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("0.25"),
					corev1.ResourceMemory: resource.MustParse("1536Mi"),
				},
			},
		}},
	}
}

func objects() map[string]runtime.Object {
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "default"}
	}
	deployment := func(name string, replicas int32) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr(replicas),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}},
				},
			},
		}
	}
	big := deployment("web", 3)
	big.Spec.Template.Spec = podSpec()
	big.Spec.Strategy = appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr(intstr.FromInt32(0)),
			MaxSurge:       ptr(intstr.FromString("25%")),
		},
	}
	big.Spec.RevisionHistoryLimit = ptr(int32(10))
	big.Spec.Paused = false

	return map[string]runtime.Object{
		"configmap": &corev1.ConfigMap{
			ObjectMeta: meta("settings"),
			Data:       map[string]string{"b.conf": "x=1\n", "a.txt": "héllo <&>", "empty": ""},
			BinaryData: map[string][]byte{"blob": {0, 1, 2, 0xff}, "none": {}},
		},
		"secret": &corev1.Secret{
			ObjectMeta: meta("creds"),
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{"password": []byte("s3cr3t"), "user": []byte("admin"), "blank": {}},
		},
		"secret-immutable-tls": &corev1.Secret{
			ObjectMeta: meta("tls"),
			Type:       corev1.SecretTypeTLS,
			Immutable:  ptr(false),
			Data:       map[string][]byte{"tls.crt": []byte("CERT"), "tls.key": []byte("KEY")},
		},
		"namespace": &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
		"serviceaccount": &corev1.ServiceAccount{
			ObjectMeta:                   meta("builder"),
			AutomountServiceAccountToken: ptr(false),
			ImagePullSecrets:             []corev1.LocalObjectReference{{Name: "registry"}},
		},
		"deployment-replicas-0": deployment("idle", 0),
		"deployment":            big,
		"service": &corev1.Service{
			ObjectMeta: meta("web"),
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeClusterIP,
				Selector: labels,
				Ports: []corev1.ServicePort{
					{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
					{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9090)},
					{Name: "zero", Port: 81},
				},
			},
		},
		"job": &batchv1.Job{
			ObjectMeta: meta("pi"),
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr(int32(4)),
				Completions:  ptr(int32(1)),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name: "pi", Image: "perl:5.34",
						Command: []string{"perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"},
					}},
				}},
			},
		},
		"cronjob": &batchv1.CronJob{
			ObjectMeta: meta("nightly"),
			Spec: batchv1.CronJobSpec{
				Schedule:                   "0 3 * * *",
				TimeZone:                   ptr("Etc/UTC"),
				SuccessfulJobsHistoryLimit: ptr(int32(0)),
				JobTemplate: batchv1.JobTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
					Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyOnFailure,
						Containers:    []corev1.Container{{Name: "job", Image: "busybox"}},
					}}},
				},
			},
		},
		"role": &rbacv1.Role{
			ObjectMeta: meta("reader"),
			Rules: []rbacv1.PolicyRule{{
				Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"pods"},
			}},
		},
		"rolebinding": &rbacv1.RoleBinding{
			ObjectMeta: meta("read-pods"),
			Subjects: []rbacv1.Subject{
				{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "jane"},
				{Kind: "ServiceAccount", Name: "builder", Namespace: "default"},
			},
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "reader"},
		},
		"poddisruptionbudget": &policyv1.PodDisruptionBudget{
			ObjectMeta: meta("web"),
			Spec: policyv1.PodDisruptionBudgetSpec{
				MaxUnavailable: ptr(intstr.FromString("50%")),
				Selector:       &metav1.LabelSelector{MatchLabels: labels},
			},
		},
		"ingress": &networkingv1.Ingress{
			ObjectMeta: meta("web"),
			Spec: networkingv1.IngressSpec{
				IngressClassName: ptr("traefik"),
				TLS:              []networkingv1.IngressTLS{{Hosts: []string{"example.com"}, SecretName: "tls"}},
				Rules: []networkingv1.IngressRule{{
					Host: "example.com",
					IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
						Paths: []networkingv1.HTTPIngressPath{{
							Path:     "/",
							PathType: ptr(networkingv1.PathTypePrefix),
							Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
								Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80},
							}},
						}},
					}},
				}},
			},
		},
		"pod": &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: "probe", Namespace: "default", Labels: labels, CreationTimestamp: created,
				Annotations: map[string]string{"note": "line\u2028sep"},
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "0c9f-11", Controller: ptr(true),
				}},
				ManagedFields: []metav1.ManagedFieldsEntry{{
					Manager: "kubectl-create", Operation: metav1.ManagedFieldsOperationUpdate,
					APIVersion: "v1", Time: &created, FieldsType: "FieldsV1",
					FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}`)},
				}},
			},
			Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: ptr(int64(0)),
				Containers: []corev1.Container{{
					Name: "app", Image: "busybox", Args: []string{"sleep", "3600"},
					Env: []corev1.EnvVar{
						{Name: "PLAIN", Value: "1"},
						{Name: "EMPTY"},
						{Name: "NODE", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"},
						}},
						{Name: "LIMIT", ValueFrom: &corev1.EnvVarSource{
							ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")},
						}},
					},
					LivenessProbe: &corev1.Probe{
						ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/healthz", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP,
							HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "1"}},
						}},
						InitialDelaySeconds: 3, PeriodSeconds: 10,
					},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}},
						FailureThreshold: 1,
					},
					StartupProbe: &corev1.Probe{
						ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}},
					},
					SecurityContext: &corev1.SecurityContext{
						RunAsUser: ptr(int64(0)), RunAsNonRoot: ptr(false), AllowPrivilegeEscalation: ptr(false),
						Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
						corev1.ResourceMemory: resource.MustParse("128974848"),
						corev1.ResourceCPU:    resource.MustParse("1.5"),
						"example.com/gpu":     resource.MustParse("1"),
					}},
					VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/cache", ReadOnly: true}},
				}},
				Volumes: []corev1.Volume{
					{Name: "cache", VolumeSource: corev1.VolumeSource{
						EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("64Mi"))},
					}},
					{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
						LocalObjectReference: corev1.LocalObjectReference{Name: "settings"},
						Items:                []corev1.KeyToPath{{Key: "a.txt", Path: "a", Mode: ptr(int32(0o400))}},
						DefaultMode:          ptr(int32(0o644)),
					}}},
				},
				Tolerations: []corev1.Toleration{{
					Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists,
					Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(-1)),
				}},
				SecurityContext: &corev1.PodSecurityContext{SupplementalGroups: []int64{1000, 0, -5}, FSGroup: ptr(int64(2000))},
				NodeSelector:    map[string]string{"kubernetes.io/os": "linux"},
			},
		},
		"event": &corev1.Event{
			ObjectMeta:          meta("probe.17c"),
			InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "probe", UID: "0c9f-12"},
			Reason:              "Started",
			Message:             "Started container app",
			Source:              corev1.EventSource{Component: "kubelet", Host: "node-1"},
			FirstTimestamp:      created,
			LastTimestamp:       metav1.NewTime(time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)),
			Count:               2,
			Type:                corev1.EventTypeNormal,
			EventTime:           micro,
			ReportingController: "kubelet",
			ReportingInstance:   "node-1",
			Series:              &corev1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(time.Unix(0, 0).UTC())},
		},
		"lease": &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: "node-1", Namespace: "kube-node-lease"},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr("node-1"),
				LeaseDurationSeconds: ptr(int32(40)),
				AcquireTime:          &micro,
				RenewTime:            ptr(metav1.NewMicroTime(time.Date(2024, 5, 17, 8, 31, 0, 999, time.UTC))),
				LeaseTransitions:     ptr(int32(0)),
			},
		},
		"horizontalpodautoscaler": &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: meta("web"),
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
				MinReplicas:    ptr(int32(1)),
				MaxReplicas:    5,
				Metrics: []autoscalingv2.MetricSpec{
					{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
						Name:   corev1.ResourceCPU,
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(80))},
					}},
					{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
						Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(resource.MustParse("1k"))},
					}},
				},
			},
		},
		"certificatesigningrequest": &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "node-csr"},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request:           []byte("-----BEGIN CERTIFICATE REQUEST-----\n"),
				SignerName:        "kubernetes.io/kube-apiserver-client",
				ExpirationSeconds: ptr(int32(86400)),
				Usages:            []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth},
				Username:          "jane",
				Groups:            []string{"system:authenticated"},
				Extra:             map[string]certificatesv1.ExtraValue{"scopes": {"a", "b"}, "empty": {}},
			},
		},
		"selfsubjectaccessreview": &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "default", Verb: "list", Resource: "pods"},
			},
		},
		"tokenrequest": &authenticationv1.TokenRequest{
			ObjectMeta: meta("builder"),
			Spec: authenticationv1.TokenRequestSpec{
				Audiences:         []string{"https://kubernetes.default.svc"},
				ExpirationSeconds: ptr(int64(3600)),
			},
		},
		"controllerrevision": &appsv1.ControllerRevision{
			ObjectMeta: meta("web-1"),
			Data:       runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"metadata":{"labels":{"app":"web"}}}},"n":1.5}`)},
			Revision:   1,
		},
		"deleteoptions": &metav1.DeleteOptions{
			GracePeriodSeconds: ptr(int64(0)),
			PropagationPolicy:  ptr(metav1.DeletePropagationForeground),
			DryRun:             []string{metav1.DryRunAll},
		},
		"validatingwebhookconfiguration": &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "policy"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name:                    "policy.example.com",
				ClientConfig:            admissionregistrationv1.WebhookClientConfig{CABundle: []byte{1, 2, 3}, URL: ptr("https://example.com")},
				SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
				AdmissionReviewVersions: []string{"v1"},
				TimeoutSeconds:          ptr(int32(5)),
			}},
		},
		"customresourcedefinition": &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "example.com",
				Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Kind: "Widget", ShortNames: []string{"wd"}},
				Scope: apiextensionsv1.NamespaceScoped,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object",
						Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"size": {Type: "integer", Maximum: ptr(10.0), Minimum: ptr(0.5), Default: &apiextensionsv1.JSON{Raw: []byte("3")}},
							"tags": {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}},
							"mode": {Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"a"`)}, {Raw: []byte(`"b"`)}}},
							"port": {XIntOrString: true, AnyOf: []apiextensionsv1.JSONSchemaProps{{Type: "integer"}, {Type: "string"}}},
							"labels": {Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{
								Allows: true, Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"},
							}},
							"extra": {Type: "object", XPreserveUnknownFields: ptr(true), AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: false}},
						},
						Required: []string{"size"},
					}},
					Subresources:             &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
					AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{{Name: "Size", Type: "integer", JSONPath: ".spec.size"}},
				}},
			},
		},
	}
}

var quantities = []string{
	"0", "00", "-0", "+0", "1", "+1", "-1", "01", "1.0", "1.500", "1.5", "0.5", ".5", "5.", "-1.5",
	"1000m", "100m", "1m", "0.1m", "1n", "0.1n", "-0.1n", "1u", "1k", "1000", "1500", "15000",
	"1M", "1G", "1T", "1P", "1E", "1000E", "1e3", "1E3", "1e-3", "1.5e3", "1e0", "1e+3", "12e2",
	"1e21", "1e-12", "100e-12", "1Ki", "1024Ki", "1536Ki", "8Mi", "10Mi", "1.5Gi", "0.5Ki", "1.Gi",
	"1Pi", "1Ei", "8Ei", "16Ei", "-1Ki", "-1.5Gi", "1023", "1024", "2048", "123456789012345678",
	"1234567890123456789", "12345678901234567890", "0.000000001", "0.0000000001", "-0.0000000001",
	"1.23456789012345678901", "100Gi", "1023Ki", "0.001Ki", "1.0001Ki", "128974848", "129e6",
	"129M", "123Mi", "500m", "0.25", "1536Mi", "e3", ".", "0.", "0.0", "1.", "007",
	"", "abc", "1.2.3", "1kk", "1e", "1Ki3", "--1", "1 ", " 1", "1Z", "-.e-10", ".Pi", "1e99999999999999999999",
	"1e-40", "1Mi+", "1e-", "1i", "1mi",
}

var durations = []time.Duration{
	0, 1, 999, 1000, 1500, 999999, 1000000, 1500000, 999999999, time.Second, 1500 * time.Millisecond,
	time.Minute, 90 * time.Second, time.Hour, time.Hour + time.Nanosecond, 36 * time.Hour, -time.Minute,
	-1, 1<<63 - 1, -1 << 63,
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: protofixtures <output directory>")
		os.Exit(2)
	}
	dir := os.Args[1]
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		admissionregistrationv1.AddToScheme, appsv1.AddToScheme, authenticationv1.AddToScheme,
		authorizationv1.AddToScheme, autoscalingv2.AddToScheme, batchv1.AddToScheme,
		certificatesv1.AddToScheme, coordinationv1.AddToScheme, corev1.AddToScheme,
		networkingv1.AddToScheme, policyv1.AddToScheme, rbacv1.AddToScheme, apiextensionsv1.AddToScheme,
	} {
		must(add(scheme))
	}
	codecs := serializer.NewCodecFactory(scheme).WithoutConversion()
	pb := protobuf.NewSerializer(scheme, scheme)
	js := jsonserializer.NewSerializerWithOptions(jsonserializer.DefaultMetaFactory, scheme, scheme,
		jsonserializer.SerializerOptions{Pretty: true})

	for name, obj := range objects() {
		gvks, _, err := scheme.ObjectKinds(obj)
		must(err)
		gv := gvks[0].GroupVersion()
		if _, ok := obj.(*metav1.DeleteOptions); ok {
			gv = corev1.SchemeGroupVersion
		}
		body, err := runtime.Encode(codecs.EncoderForVersion(pb, gv), obj)
		must(err)
		decoded, _, err := pb.Decode(body, nil, nil)
		must(err)
		var out bytes.Buffer
		must(js.Encode(decoded, &out))
		must(os.WriteFile(filepath.Join(dir, name+".pb"), body, 0o644))
		must(os.WriteFile(filepath.Join(dir, name+".json"), append(bytes.TrimSpace(out.Bytes()), '\n'), 0o644))
	}

	parsed := make([][2]any, 0, len(quantities))
	for _, s := range quantities {
		q, err := resource.ParseQuantity(s)
		if err != nil {
			parsed = append(parsed, [2]any{s, nil})
			continue
		}
		text, err := json.Marshal(q)
		must(err)
		var value string
		must(json.Unmarshal(text, &value))
		parsed = append(parsed, [2]any{s, value})
	}
	writeJSON(filepath.Join(dir, "quantities.json"), parsed)

	formatted := make([][2]any, 0, len(durations))
	for _, d := range durations {
		formatted = append(formatted, [2]any{int64(d), d.String()})
	}
	writeJSON(filepath.Join(dir, "durations.json"), formatted)
}

func writeJSON(path string, rows [][2]any) {
	var out bytes.Buffer
	out.WriteString("[\n")
	for i, row := range rows {
		line, err := json.Marshal(row)
		must(err)
		out.WriteString("  ")
		out.Write(line)
		if i < len(rows)-1 {
			out.WriteString(",")
		}
		out.WriteString("\n")
	}
	out.WriteString("]\n")
	must(os.WriteFile(path, out.Bytes(), 0o644))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
