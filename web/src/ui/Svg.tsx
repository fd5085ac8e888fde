// An SVG the gateway drew (QR codes): parsed as SVG, never as HTML, and sanitised of scripts.
import { useEffect, useRef } from "preact/hooks";

export function Svg({ markup, label, class: className }: { markup: string; label: string; class?: string }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const doc = new DOMParser().parseFromString(markup, "image/svg+xml");
    const svg = doc.documentElement;
    svg.querySelectorAll("script, foreignObject").forEach((n) => n.remove());
    for (const el of [svg, ...svg.querySelectorAll("*")]) {
      for (const attr of [...el.attributes]) if (attr.name.startsWith("on")) el.removeAttribute(attr.name);
    }
    // Without a viewBox, CSS that sets a smaller box crops the drawing instead of scaling it: a QR code
    // would lose two of its three corner markers and no phone could read it.
    const width = Number.parseFloat(svg.getAttribute("width") ?? "");
    const height = Number.parseFloat(svg.getAttribute("height") ?? "");
    if (!svg.hasAttribute("viewBox") && width > 0 && height > 0) svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    host.current?.replaceChildren(document.importNode(svg, true));
  }, [markup, label]);
  return <div class={className} ref={host} />;
}
