//! HTML to plain text, for Mastodon statuses and feed summaries.
//!
//! Tags are dropped and their text kept (Mastodon's hidden `<span class="invisible">` parts of
//! links included, so links come out whole); `<br>` becomes a line break and block elements
//! (`<p>`, `<div>`, `<li>`, headings...) separate paragraphs; `<script>` and `<style>` are
//! dropped with their content; character references (`&amp;`, `&#233;`...) are decoded; runs of
//! white space collapse to one space, as a browser shows them.

/// Block elements: their start and end separate paragraphs.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "blockquote",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "footer",
];

/// The plain text of an HTML fragment.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    while let Some(lt) = rest.find('<') {
        let (text, after) = rest.split_at(lt);
        if skip_until.is_none() {
            push_text(&mut out, text);
        }
        // `<` not starting a tag (`a < b` left unescaped) is text.
        let starts_tag = after[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
        if !starts_tag {
            if skip_until.is_none() {
                push_text(&mut out, "<");
            }
            rest = &after[1..];
            continue;
        }
        let Some(gt) = after.find('>') else {
            // An unterminated tag at the end: drop it.
            rest = "";
            break;
        };
        let tag = &after[1..gt];
        rest = &after[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(end) = skip_until {
            if closing && name == end {
                skip_until = None;
            }
            continue;
        }
        match name.as_str() {
            "script" if !closing => skip_until = Some("script"),
            "style" if !closing => skip_until = Some("style"),
            "br" => push_break(&mut out, 1),
            n if BLOCKS.contains(&n) => push_break(&mut out, 2),
            _ => {}
        }
    }
    if skip_until.is_none() {
        push_text(&mut out, rest);
    }
    out.trim().to_string()
}

/// Appends `raw` text (entities decoded, white space collapsed).
fn push_text(out: &mut String, raw: &str) {
    let decoded = html_escape::decode_html_entities(raw);
    for c in decoded.chars() {
        if c.is_whitespace() && c != '\u{a0}' {
            if !out.is_empty() && !out.ends_with([' ', '\n']) {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

/// Ends the current line with up to `lines` line breaks (no trailing spaces, no pile-up).
fn push_break(out: &mut String, lines: usize) {
    while out.ends_with(' ') {
        out.pop();
    }
    if out.is_empty() {
        return;
    }
    let have = out.chars().rev().take_while(|c| *c == '\n').count();
    for _ in have..lines {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mastodon_status_html_becomes_text() {
        let html = r#"<p>Gros incendie port Édouard Herriot, fumée noire visible depuis <a href="https://mamot.fr/tags/Lyon" class="mention hashtag" rel="tag">#<span>Lyon</span></a> &amp; Gerland.<br />Fermez   les fenêtres !</p><p><span class="h-card" translate="no"><a href="https://piaille.fr/@bob" class="u-url mention">@<span>bob</span></a></span> <a href="https://www.leprogres.fr/faits-divers/2026/11/27/incendie-port" target="_blank" rel="nofollow noopener" translate="no"><span class="invisible">https://www.</span><span class="ellipsis">leprogres.fr/faits-divers/2026</span><span class="invisible">/11/27/incendie-port</span></a></p>"#;
        assert_eq!(
            html_to_text(html),
            "Gros incendie port Édouard Herriot, fumée noire visible depuis #Lyon & Gerland.\n\
             Fermez les fenêtres !\n\n\
             @bob https://www.leprogres.fr/faits-divers/2026/11/27/incendie-port"
        );
    }

    #[test]
    fn scripts_entities_and_stray_brackets() {
        assert_eq!(
            html_to_text("<div>a &lt; b &#233;t&eacute; <script>alert(1)</script>ok</div><style>p{}</style>x < y"),
            "a < b été ok\n\nx < y"
        );
        assert_eq!(html_to_text("plain text, no tags"), "plain text, no tags");
        assert_eq!(html_to_text("<p></p>"), "");
    }
}
