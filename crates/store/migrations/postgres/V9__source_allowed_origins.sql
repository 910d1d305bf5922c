-- Web pages allowed to send with a source's write key from a browser (CORS), one origin
-- per line (`https://shop.example.it`); NULL lets any page send, as Segment does.
ALTER TABLE sources ADD COLUMN allowed_origins TEXT;
